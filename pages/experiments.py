"""Experiments: every cached experiment, what it is, how big; open it or delete it."""

import datetime

import streamlit as st

from ui import components, formatting
from ui.services import catalogue

components.use_app_navigation()

CONFIRM_KEY = "delete_pending"  # the id whose deletion awaits confirmation
DELETED_KEY = "deleted_notice"  # what the last deletion removed, said once after its rerun

st.title("Experiments")
if notice := st.session_state.pop(DELETED_KEY, None):
    st.success(notice, icon=":material/delete:")
cached = catalogue.list_cached()
if unreadable := catalogue.unreadable_experiments():
    st.warning(f"{len(unreadable)} folder{'s' if len(unreadable) > 1 else ''} of the cache could not be read as an "
               "experiment and {} skipped (delete or fix {} by hand):".format(
                   "are" if len(unreadable) > 1 else "is", "them" if len(unreadable) > 1 else "it"),
               icon=":material/warning:")
    st.text("\n".join(f"{item.folder.name}: {item.reason}" for item in unreadable))  # as text: user-made names
if not cached:
    st.info("The cache holds no experiment yet. Open **Explore** (it computes the default one) or make one on "
            "**New experiment**.", icon=":material/inventory_2:")
    st.page_link("pages/new.py", label="New experiment", icon=":material/add_circle:")
    st.stop()

st.caption(f"{len(cached)} experiment{'s' if len(cached) > 1 else ''} in `{catalogue.cache_root()}`, "
           f"{formatting.human_size(sum(item.size_bytes for item in cached))} in all; newest first.")

for item in cached:
    experiment = item.experiment
    config = experiment.config
    with st.container(border=True):
        info, actions = st.columns([3, 2], vertical_alignment="center")
        with info:
            # Strings from a config.json (checked when it opened, shown as text all the same: it may come from elsewhere)
            st.markdown(f"**{components.as_text(catalogue.dataset_title(config.dataset))} · forget "
                        f"{components.as_text(config.forget.describe())}** · `{experiment.id}`")
            changed = datetime.datetime.fromtimestamp(item.modified).strftime("%Y-%m-%d %H:%M")
            training = components.as_text(catalogue.describe_training(experiment))
            st.caption(f"model {components.as_text(catalogue.describe_model(experiment))} · "
                       f"{'retrained oracle' if config.oracle else 'no oracle'} · unlearning "
                       f"{components.as_text(config.unlearn.describe())}{f' · {training}' if training else ''}  \n"
                       f"**{item.points} point{'s' if item.points != 1 else ''}** · "
                       f"**{formatting.human_size(item.size_bytes)}** · last change {changed} "
                       f"({formatting.human_age(item.modified)})")
        with actions, st.container(horizontal=True, horizontal_alignment="right", vertical_alignment="center"):
            st.page_link("pages/explore.py", label="Explore", icon=":material/scatter_plot:",
                         query_params={"experiment": experiment.id})
            st.page_link("pages/compare.py", label="Compare", icon=":material/leaderboard:",
                         query_params={"experiment": experiment.id})
            if st.button("Delete", key=f"delete_{experiment.id}", icon=":material/delete:"):
                st.session_state[CONFIRM_KEY] = experiment.id
        if st.session_state.get(CONFIRM_KEY) == experiment.id:
            st.warning(f"Delete experiment `{experiment.id}`: its {item.points} points, reference models and "
                       f"results ({formatting.human_size(item.size_bytes)})? This cannot be undone; computing it "
                       "again starts from scratch.", icon=":material/warning:")
            with st.container(horizontal=True):
                if st.button("Delete for good", key=f"confirm_delete_{experiment.id}", type="primary",
                             icon=":material/delete_forever:"):
                    try:
                        catalogue.delete_experiment(experiment.id)
                    except OSError as err:
                        st.error(f"Cannot delete {experiment.root} ({err.strerror or err}).", icon=":material/error:")
                    else:
                        st.session_state.pop(CONFIRM_KEY, None)
                        st.session_state[DELETED_KEY] = (f"Deleted experiment `{experiment.id}` "
                                                          f"({formatting.human_size(item.size_bytes)} freed).")
                        st.rerun()
                if st.button("Keep it", key=f"keep_{experiment.id}"):
                    st.session_state.pop(CONFIRM_KEY, None)
                    st.rerun()

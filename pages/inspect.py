"""A vs B: two cached models of the experiment side by side, to explain a point of the frontier. Nothing trains."""

import pandas as pd
import streamlit as st

from cup_core.cache import BrokenEntry
from ui import components, figures, formatting, pins
from ui.services import catalogue, inspect

components.use_app_navigation()

experiment = components.experiment_picker()
config = experiment.config
components.data_root_editor(experiment)

st.title("A vs B: explain a point")
st.caption(f"{catalogue.describe_experiment(experiment)} · two cached models side by side: what each still knows "
           f"of the forget set, what the membership attack sees, how its features are arranged · experiment "
           f"`{experiment.id}`")

choices = inspect.pin_choices(experiment)
if "original" not in choices:
    st.info("This experiment has no cached model yet: open **Explore** or **Compare methods** to compute it, then "
            "pin points here (or with *Pin as A / Pin as B* under a selected point).")
    st.stop()
a, b = pins.pin_pickers(choices, inspect.default_pins(experiment, choices))
projection = st.segmented_control("Embedding projection", ["pca", "tsne"], default="pca", key="projection",
                                  format_func={"pca": "PCA", "tsne": "t-SNE (slower)"}.get, bind="query-params",
                                  help="how the penultimate layer's features are drawn in 2-D (scikit-learn; seeded)")
projection = projection or "pca"

try:
    with st.spinner("Reading both models from the cache (once per checkpoint; then instant)…"):
        explained = {"A": inspect.explained(experiment, a, projection), "B": inspect.explained(experiment, b, projection)}
        samples = inspect.forget_samples(experiment)
except BrokenEntry as err:
    st.error(f"A pinned model's checkpoint is missing or damaged ({components.as_text(str(err))}); computing the "
             "experiment again recomputes it.", icon=":material/error:")
    st.stop()
except ValueError as err:
    st.error(f"Cannot read this experiment's data here: {components.as_text(formatting.error_text(err))}",
             icon=":material/error:")
    st.stop()

labels = {"A": inspect.pin_label(a), "B": inspect.pin_label(b)}
forget_class = config.forget.forget_class

rows = {}
for slot, pinned in (("A", a), ("B", b)):
    metrics = inspect.pinned_metrics(experiment, pinned)
    if metrics is not None:
        rows[f"{slot}: {labels[slot]}"] = {name: metrics.get(column) for name, column in (
            ("forget acc", "forget_acc"), ("retain acc", "retain_acc"), ("test acc", "test_acc"), ("UA", "ua"),
            ("MIA efficacy", "mia_efficacy"), ("avg gap", "avg_gap"))}
table = pd.DataFrame(rows).T
if len(table) == 2:
    table.loc["B − A"] = table.iloc[1] - table.iloc[0]
st.dataframe(table.astype(float), width="stretch", column_config={
    name: st.column_config.NumberColumn(name, format="%.2f") for name in table.columns})
if a == b:
    st.caption("A and B are the same model: pick another for one of them.")

st.subheader("Test accuracy per class")
st.plotly_chart(figures.pair_per_class_figure(
    {f"A: {labels['A']}": explained["A"]["per_class_acc"], f"B: {labels['B']}": explained["B"]["per_class_acc"]},
    forget_class), config={"displaylogo": False})
left, right = st.columns(2)
for column, slot in ((left, "A"), (right, "B")):
    with column:
        st.plotly_chart(figures.confusion_figure(explained[slot]["confusion"], f"{slot}: {labels[slot]}", forget_class),
                        key=f"confusion_{slot}", config={"displaylogo": False})
st.caption("Confusion matrices on the whole test set: rows are the true class, columns the predicted one; colour is "
           "the share of the row, the number the count." + (" The forgotten class's row is outlined." if
                                                              forget_class is not None else ""))

st.subheader("Which forget samples each model still classifies correctly")
counts = {key: int((figures.agreement(explained["A"]["forget_correct"], explained["B"]["forget_correct"]) == key).sum())
          for key in figures.AGREEMENT_COLOURS}
total = sum(counts.values())
columns = st.columns(4)
for column, (key, label) in zip(columns, (("both", "both still right"), ("only A", "only A still right"),
                                          ("only B", "only B still right"), ("neither", "forgotten by both"))):
    column.metric(label, f"{counts[key]} / {total}", border=True)
st.plotly_chart(figures.forget_samples_figure(samples, explained["A"]["forget_correct"],
                                              explained["B"]["forget_correct"]), key="forget_samples",
                config={"displaylogo": False})
shown = len(samples["y"])
st.caption(("The forget set's images, each framed by which model still gets it right" if samples["x"].ndim > 2 else
            "The forget set's points over the retained ones (grey), coloured by which model still gets each right")
           + (f"; the first {shown} of {len(explained['A']['forget_correct'])}." if shown < len(
               explained["A"]["forget_correct"]) else "."))

st.subheader("Membership attack")
left, right = st.columns(2)
for column, slot in ((left, "A"), (right, "B")):
    with column:
        st.plotly_chart(figures.mia_figure(explained[slot], f"{slot}: {labels[slot]}"), key=f"mia_{slot}",
                        config={"displaylogo": False})
st.caption("The SVC attack of the unlearning literature (metrics.py) sees one number per sample, the model's "
           "confidence in its true class. It is fit to tell members (retain samples) from non-members (test samples"
           + (" of the retained classes" if config.forget.kind == "class" else "") + "); where it says "
           "“non-member” is shaded. MIA efficacy is the share of the forget set that falls in the shade: higher means "
           "the forget set looks unseen.")

st.subheader("Embedding")
left, right = st.columns(2)
for column, slot in ((left, "A"), (right, "B")):
    with column:
        st.plotly_chart(figures.embedding_figure(explained[slot], f"{slot}: {labels[slot]}", forget_class),
                        key=f"embedding_{slot}", config={"displaylogo": False})
st.caption("The input of each model's last linear layer for test samples (dots, by class) and forget samples "
           "(crosses), projected to 2-D separately per model, so axes are not comparable between A and B; what is "
           "comparable is whether the forget samples still sit in their class's cluster.")

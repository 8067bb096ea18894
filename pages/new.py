"""New experiment: choose the data, model, forget set, oracle, methods and recipe; see the cost; run it."""

import streamlit as st

from ui import components, new_experiment

components.use_app_navigation()

st.title("New experiment")
st.caption("Set up an unlearning experiment, check it and see what it will cost, then run it here (Cancel keeps "
           "the finished points). Every setting below becomes part of the experiment's id, except where the files "
           "are: open it afterwards in Explore or Compare, or download its sweep file to run it elsewhere.")

running = new_experiment.is_running()
request = new_experiment.settings_form(disabled=running)
new_experiment.check_and_start(request, disabled=running)
new_experiment.run_and_report()

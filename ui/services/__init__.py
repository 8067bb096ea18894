"""The one place where Streamlit's caching meets cup_core: pages ask here, never train themselves. One module a
concern, each imported by what uses it (no facade here):

    catalogue       which experiments there are: data sets, forget sets, the sidebar's choices, their descriptions,
                    the experiments list
    sweeps          what a plan still lacks (its calibrations resolved against the cache) and computing it
    selected_point  the point selected on Explore or Compare: its seeds, whether it is cached, its export
    explore         the Explore page's view and scrubber
    compare         the Compare page's views (one recipe or pooled learning rates), plans, figures and notes
    learn           the Learn page's toy, its decision regions and trajectories
    inspect         A vs B: the pinnable models, their metrics and explanations
    new             the New experiment page's request, its check and the uploads it saves
    caching         what the caches key an experiment by, and figures and results built once per key
"""

"""Trust Region Playground: the Streamlit entry point.

``streamlit run app.py`` reads this file twice. Imported as a module (``__name__ == "app"``) it
is the web server: Streamlit's own Starlette app plus the live feed's routes (``ui/live_api.py``,
what the run panels poll). Run as the script of every session (``__name__ == "__main__"``) it is
the multipage navigation. A worker process (``core/runtime/worker.py``) imports the session's
script as ``__mp_main__`` when it starts, as multiprocessing does: then it does nothing (building
the server there cost each run ~1 s before its first update).
"""

if __name__ == "__mp_main__":
    pass
elif __name__ != "__main__":
    import streamlit as st

    from ui.live_api import routes
    from ui.state import current_manager

    app = st.App(__file__, routes=routes(current_manager))
else:
    import streamlit as st

    from ui import presentation
    from ui.deck_bar import scene_tools

    st.set_page_config(page_title="Trust Region Playground", page_icon="🎯", layout="wide")

    sections = {
        "Playground": [
            st.Page("pages/home.py", title="Home", icon="🏠", default=True),
            st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
            st.Page("pages/compare.py", title="Compare", icon="📊", url_path="compare"),
            st.Page("pages/runs.py", title="Runs", icon="🗂️", url_path="runs"),
        ],
        "Labs": [
            st.Page(
                "pages/trust_region_lab.py",
                title="Trust Region Lab",
                icon="🎯",
                url_path="trust-region-lab",
            ),
            st.Page("pages/gae_lab.py", title="GAE Lab", icon="⚖️", url_path="gae-lab"),
            st.Page(
                "pages/inspector.py", title="Update Inspector", icon="🔬", url_path="inspector"
            ),
            st.Page("pages/deck.py", title="Lecture deck", icon="🎞️", url_path="deck"),
        ],
    }
    pages = st.navigation(sections)
    presentation.setup()  # one switch for every page, kept in the URL (?present=1)
    with st.sidebar:
        presentation.presentation_toggle()
    scene_tools(pages, sections)  # save this view as a scene; a presented deck's bar and keys
    pages.run()

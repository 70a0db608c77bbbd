"""Trust Region Playground: the Streamlit entry point.

``streamlit run app.py`` reads this file twice. Imported as a module (``__name__ == "app"``) it
is the web server: Streamlit's own Starlette app plus the live feed's routes (``ui/live_api.py``,
what the run panels poll). Run as the script of every session (``__name__ == "__main__"``) it is
the multipage navigation.
"""

import streamlit as st

if __name__ != "__main__":
    from ui.live_api import routes
    from ui.state import current_manager

    app = st.App(__file__, routes=routes(current_manager))
else:
    st.set_page_config(page_title="Trust Region Playground", page_icon="🎯", layout="wide")

    pages = st.navigation(
        {
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
            ],
        }
    )
    pages.run()

"""Trust Region Playground: the Streamlit entry point (multipage navigation only)."""

import streamlit as st

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
        ],
    }
)
pages.run()

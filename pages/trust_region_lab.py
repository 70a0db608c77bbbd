"""Page under construction in this release."""

import streamlit as st

st.title("trust_region_lab")
st.info("This page is being built.")

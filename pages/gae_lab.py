"""Page under construction in this release."""

import streamlit as st

st.title("gae_lab")
st.info("This page is being built.")

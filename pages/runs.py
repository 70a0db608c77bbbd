"""Page under construction in this release."""

import streamlit as st

st.title("runs")
st.info("This page is being built.")

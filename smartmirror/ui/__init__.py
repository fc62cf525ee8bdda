"""The Streamlit user interface: the page, panels, overlay drawing, video sources and session history."""

"""The HTTP reward server (``rewardbridge serve``), its wire schema, dynamic batcher and client.

Import submodules directly (``rewardbridge.serving.app``); FastAPI is an optional extra
(``pip install rewardbridge[serve]``), so nothing is imported here.
"""

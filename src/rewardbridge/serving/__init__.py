"""The HTTP reward server (``rewardbridge serve``), its wire schema and dynamic batcher (the
client is ``rewardbridge.verifiers.remote.RemoteVerifier``).

Import submodules directly (``rewardbridge.serving.app``); FastAPI is an optional extra
(``pip install rewardbridge[serve]``), so nothing is imported here.
"""

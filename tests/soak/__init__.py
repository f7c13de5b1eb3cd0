"""The seeded soak (issue 22): many faults and changes at once, ours beside stock rbd_support.

The fault suite (``tests/cluster/test_faults_*.py``) proves one fault at a time. The soak runs
ONE random script of faults, image changes, schedule changes, pauses, option changes and
concurrent clients against two clusters of one release side by side, ours and stock
rbd_support, and checks invariants from the clusters' own data throughout:

- ``script``: the script, generated up front from a seed, so a failure is reproduced by it;
- ``model``: what each cluster should hold (schedules, eligible images), from the commands
  that succeeded;
- ``accounting``: slots due, met, missed (by cause) and doubled, over the recorded snapshots;
  RSS and thread slopes; ``status`` latency;
- ``report``: both clusters side by side;
- ``driver``: the clusters themselves (the only module that imports cluster code).

Run it with ``python3 -m tests.soak`` (``--help``); ``tests/cluster/test_faults_soak.py`` runs
a short one of ours alone in the suite.
"""

"""Sparse-to-full body completion: a VR user's head and hands (and any extra trackers) in, the
22-joint body out (model.py the network, streams.py the data, train.py, evaluate.py, ship.py the
shipped default, live.py the streaming completer the reaction pipeline uses)."""

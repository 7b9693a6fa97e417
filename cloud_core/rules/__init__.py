"""Loyalty rules: each is a function of an event and the ledger state, run inside the
transaction that records its effects (visits now; parking and coupons join here)."""

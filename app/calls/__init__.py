"""Call data ingestion: leads and call attempts from the dialer, and the usage counters they keep.

`operations` holds the writes (used by the dialer API and the demo seed); the billing rule they
apply — a lead counts once, in the period of its first call attempt — is DESIGN §1's.
"""

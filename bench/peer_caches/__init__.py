"""What a Django developer would otherwise put in front of the items, for `make bench`.

Each peer is written the way its documentation shows it, and served beside the API
by the same gunicorn, middleware, PostgreSQL and Redis (bench/peers.py).
"""

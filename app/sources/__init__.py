"""Where data comes from: ScyllaDB, DynamoDB, the catalog service, or the embedded backend.

Every backend implements the small protocols in `base`; the recommender sees nothing else.
"""

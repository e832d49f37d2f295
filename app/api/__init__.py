"""HTTP routes: parse and validate input, call the recommender, serialize the result."""

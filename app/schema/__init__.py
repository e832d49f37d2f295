"""Schema of the stores: versioned CQL migrations and the DynamoDB table, all idempotent."""

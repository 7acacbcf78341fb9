"""Rules: pure decisions (expansion, trigger rules, scheduling, claims, clears), tested without a database."""

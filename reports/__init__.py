"""Reports: results.jsonl -> pandas tables -> seaborn figures -> one HTML page."""

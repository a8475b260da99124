"""A data subject's rights: access (export) and erasure, over every table and file Outreach writes."""

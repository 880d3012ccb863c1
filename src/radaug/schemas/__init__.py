"""JSON Schemas of the study configuration."""

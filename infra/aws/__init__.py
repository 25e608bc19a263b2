"""Definitions for the aws profile: Athena/Glue table DDL and Redshift Spectrum external schemas."""

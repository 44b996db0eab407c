"""dbx-privatelink: Databricks on AWS PrivateLink, reconciled by Step Functions."""

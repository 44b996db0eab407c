"""The AWS adapters: each wraps a boto3 client and maps its errors to the package's typed ones."""

# The template's DatabricksSecretMaxAgeSeconds default: how long a read secret is used before it is read again
# (here, not in aws.secrets, so the settings read it without loading Powertools Parameters at cold start).
DEFAULT_SECRET_MAX_AGE_S = 300

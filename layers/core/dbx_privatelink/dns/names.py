"""How names are compared (matching rules and zones), and which query statuses carry no answer: no models, so
a step that checks answers does not load the resolution explainer (resolution.py)."""

# Statuses of a query that say nothing about the name, only that no answer came (yet): worth asking again.
UNANSWERED = frozenset({"TIMEOUT", "UNREACHABLE", "SERVFAIL"})


def normalize(name: str) -> str:
    """A domain name as compared here: lower case, no trailing dot; the root is "."."""
    cleaned = name.strip().lower().rstrip(".")
    return cleaned or "."


def labels(domain: str) -> int:
    """How specific a domain is: its label count ("." has none)."""
    return 0 if domain == "." else domain.count(".") + 1


def matches(name: str, domain: str) -> bool:
    """True when `name` is `domain` or a subdomain of it ("." matches everything)."""
    return domain == "." or name == domain or name.endswith("." + domain)

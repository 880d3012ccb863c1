"""Error types. Every message names the file, case or config key and the fix."""


class RadaugError(Exception):
    """Base class: an error the user can act on (bad config, bad data, broken invariant)."""


class ConfigError(RadaugError):
    """The study configuration is invalid. The message names the key and the fix."""


class ManifestError(RadaugError):
    """A manifest row or the file it points to is invalid. The message names the case."""


class DataError(RadaugError):
    """Example data could not be fetched or verified."""


class LeakageError(RadaugError):
    """A leakage invariant (ARCHITECTURE.md, "Invariants checked by code") is broken: the run must stop."""


class VerifyError(RadaugError):
    """A study folder or bundle does not match its manifest."""


class StorageError(RadaugError):
    """An artifact could not be written (disk full, read-only or unwritable folder); nothing was replaced."""


class SamplingError(RadaugError):
    """A trained generator cannot fill a class's quota with plausible samples; the message names the fix."""

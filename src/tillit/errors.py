"""Errors that stop a run with a clear message (the CLI turns them into exit code 2)."""


class TillitError(Exception):
    """A problem with the input or the request that the user must fix; never a bug."""


class ContractError(TillitError):
    """The input folder does not have the tables or columns the data contract requires."""


class QuarantineLimitError(TillitError):
    """Too many rows broke the contract: the export looks broken, so the run stops."""


class ConfigError(TillitError):
    """A config file has an unknown key or a bad value."""

"""The one exception type for bad user input: printed as one line, exit code 2."""


class ConfigError(Exception):
    """A user mistake in a config key, override, path or name.

    `where` names the key or file, `problem` says what is wrong, `fix` what to do.
    """

    def __init__(self, where: str, problem: str, fix: str = ""):
        self.where, self.problem, self.fix = where, problem, fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.problem}"
        return f"{text}; {self.fix}" if self.fix else text

"""What every launch script shares: its `--config` flag, flag parsing with one-line errors, exits on bad input."""
from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

def config_file(name: str) -> str:
    """configs/<name>.py beside the launch/ folder of the script that runs (sys.argv[0]), else in the current
    directory. Never found through the package's location, so it is the same file whether the package is
    installed editable (`pip install -e .`) or not (`pip install .`)."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
    path = os.path.join(checkout, "configs", f"{name}.py")
    return path if os.path.exists(path) else os.path.join("configs", f"{name}.py")


def define_config(name: str):
    """The locked `--config` flag of launch/<name>.py, defaulting to configs/<name>.py."""
    try:  # with the default file, ml_collections applies sys.argv's --config.<key> overrides right here
        return config_flags.DEFINE_config_file("config", config_file(name),
                                               f"{name} config: configs/{name}.py[:preset]", lock_config=True)
    except (AttributeError, KeyError, TypeError, ValueError, flags.Error) as e:
        fail(f"bad --config override: {config_error(e)}")


def config_error(e: BaseException) -> str:
    msg = str(e.args[0] if e.args else e)
    if "Traceback" in msg:  # a config file that raised: keep its final line
        msg = [line for line in msg.splitlines() if line.strip()][-1]
    msg = msg.replace("\\'", "'").replace("\\n", " ").replace("'", "")
    return " ".join(msg.split())


def parse_flags(argv):
    """absl `flags_parser`: a mistyped --config.<key> or a bad value is one clear line and exit status 2."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError, TypeError, ValueError, flags.Error) as e:
        fail(f"bad --config override: {config_error(e)}")


def fail(message: str, status: int = 2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def run(main, argv=None) -> None:
    """absl's app.run for the benchmark scripts: bad input the run finds (a ValueError or KeyError: a config key
    the benchmark does not take, a path that is not what it must be) is one line and exit status 2."""
    def guarded(argv):
        try:
            return main(argv)
        except (ValueError, KeyError) as e:
            fail(str(e).strip("'\""))

    app.run(guarded, argv=argv, flags_parser=parse_flags)


def run_job(argv, job, show, *, stopped: tuple = ()) -> None:
    """The body of a launch script's main: run `job()` with the libraries' logs quiet and `show(result)`.

    Bad input (a ValueError or KeyError raised by the job: unknown task, bad config value, malformed file)
    is one line on stderr and exit status 2; an exception in `stopped` (a run that ended early with
    everything finished kept on disk: budget spent, API down) is one line and status 3.
    """
    import logging as pylogging

    from absl import logging

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("absl").setLevel(pylogging.WARNING)
    try:
        result = job()
    except stopped as e:
        fail(str(e), status=3)
    except (ValueError, KeyError) as e:
        fail(str(e).strip("'\""))
    show(result)


def sibling_config(config_path: str, name: str):
    """The module of configs/<name>.py beside the config file `config_path` (pass `__file__`): configs that
    build on another script's config (rlao, quickstart, compare_objectives) load it from its file."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(config_path)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"w4s_configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

# Configuration (validated once, at workflow start), paths and helpers shared by all rules.
import sys

from radaug.config import resolve_params_file, validate_config
from radaug.errors import RadaugError
from radaug.provenance import code_version
from radaug.splits import fold_key

try:
    _validated = validate_config(config, base_dir=".")
    RADIOMICS_PARAMS = str(resolve_params_file(_validated, workflow.basedir + "/workflow"))
except RadaugError as _exc:
    sys.stderr.write(f"radaug: invalid configuration:\n{_exc}\n")
    sys.exit(1)
config.clear()
config.update(_validated)

STUDY = f"results/{config['study']['name']}"
LOGS = f"{STUDY}/logs"
PROV = f"{STUDY}/provenance"
SEED = config["study"]["seed"]
BATCHES = list(range(config["preprocess"]["batches"]))
FOLDS = [
    fold_key(r, k)
    for r in range(config["split"]["repeats"])
    for k in range(config["split"]["folds"])
]
MODELS = config["generative"]["models"]
ARMS = config["evaluation"]["arms"]
VALIDATED_ARMS = [a for a in ARMS if a in MODELS]


wildcard_constraints:
    batch=r"\d+",
    fold=r"r\d+f\d+",
    model="|".join(MODELS) or "none",
    arm="|".join(ARMS),


def code(name):
    """Version of a script and the radaug code it imports: a params entry, so library changes rerun the rule."""
    return code_version(f"{workflow.basedir}/workflow/scripts/{name}.py")

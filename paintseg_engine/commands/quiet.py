"""Lightning's output that tells a paintseg user nothing, silenced at its logger, each with its reason."""
from __future__ import annotations

import logging
import warnings

# Lightning's info messages (GPU available, ...) come through this logger, its adverts too.
LIGHTNING_INFO = "lightning.pytorch.utilities.rank_zero"


def not_an_advert(record: logging.LogRecord) -> bool:
    # Every run ends up advertising litlogger / litmodels ("💡 Tip: ..."): cloud products a predict run has no use for.
    return not record.getMessage().startswith("💡 Tip")


def quiet_lightning() -> None:
    logging.getLogger(LIGHTNING_INFO).addFilter(not_an_advert)
    # Lightning 2.6's _pytree still builds torch's LeafSpec, deprecated since torch 2.10: Lightning's to change, not the user's.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
    # A resumed run whose items are all finished has empty dataloaders on purpose; the DataModule says so in one line.
    warnings.filterwarnings("ignore", message=r"Total length of `\w+` across ranks is zero")

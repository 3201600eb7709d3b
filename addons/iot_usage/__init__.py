from . import models
from . import wizards
from .tools import count_partitioned_tables_as_existing

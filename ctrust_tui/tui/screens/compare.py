from .base import CtrustScreen


class CompareScreen(CtrustScreen):
    NAV = "compare"

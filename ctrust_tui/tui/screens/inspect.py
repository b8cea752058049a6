from .base import CtrustScreen


class InspectScreen(CtrustScreen):
    NAV = "inspect"

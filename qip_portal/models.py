"""The app's models live with what they belong to (``qip_portal/packs/models.py``);
Django loads an app's models from here."""

from qip_portal.packs.models import EvidencePack, PackShare, PackShareAccess

__all__ = ["EvidencePack", "PackShare", "PackShareAccess"]

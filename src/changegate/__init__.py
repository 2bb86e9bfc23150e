"""changegate: the change control plane for managed Odoo platforms."""

__version__ = "0.1.0"

"""Odoo-aware changes (issue 7): addons, versions, checksums, upgrade plans per tenant."""

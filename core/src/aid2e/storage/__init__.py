"""Storages for experiment state; the built-in one is :class:`~aid2e.storage.filestore.FileStore`."""

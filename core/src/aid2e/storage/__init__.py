"""Where a campaign's state is kept: a directory of JSON documents (:class:`~aid2e.storage.filestore.FileStore`)."""

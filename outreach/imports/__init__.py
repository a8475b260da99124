"""Reading the bank's CSV files: the column contracts, row checks, rejections and chunked writes.

The entry points users call are in ``outreach.importer`` (``import_file``, ``import_directory``);
this package holds the parts they and the candidate sources share.
"""

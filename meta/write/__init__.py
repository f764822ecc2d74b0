"""Write: the output folder. The one guard and the atomic replacement (``outdir``), every output file and the
manifest (``outputs``), and the workbook (``workbook``).
"""

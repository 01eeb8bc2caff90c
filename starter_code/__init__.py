"""PASCAL VOC 2012 semantic segmentation course kit."""

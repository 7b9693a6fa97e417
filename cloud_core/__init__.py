"""cloud_core"""

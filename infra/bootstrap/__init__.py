"""The bootstrap Pulumi program (one stack per AWS account): see __main__.py and contract.py."""

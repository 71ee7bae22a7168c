"""The items service's AWS architecture as a CDK application: see docs/deploy-cdk.md."""

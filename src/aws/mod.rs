//! AWS: the EC2 calls awsha makes (a narrow trait and its aws-sdk-ec2 implementation, paced per
//! action), and the instance metadata service (IMDSv2).

pub mod ec2;
pub mod imds;
pub mod sdk;
pub mod throttle;

// Placeholder until the ROS issue (issue 5) lands: it will type-check agent/ros/rclnodejs-binding.ts
// against rclnodejs's real typings.
console.log('typecheck:ros: no ROS module yet');

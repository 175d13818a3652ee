/**
 * rclnodejs is an optional peer dependency and is not installed on machines without ROS 2.
 * This shorthand declaration lets the normal build compile the one module that imports it
 * (agent/ros/rclnodejs-binding.ts). `npm run typecheck:ros` checks that module against
 * rclnodejs's real typings instead (see scripts/typecheck-ros.mjs).
 */
declare module 'rclnodejs';

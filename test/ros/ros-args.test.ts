import { describe, expect, it } from 'vitest';
import { hasRosArgs, parseRosArgs, stripRosArgs } from '../../agent/ros/ros-args.js';

describe('stripRosArgs', () => {
  it('removes a --ros-args section ended by --', () => {
    expect(
      stripRosArgs(['watch', '--ros-args', '-p', 'a:=1', '-r', '__ns:=/x', '--', '/data', '--server', 'http://h']),
    ).toEqual(['watch', '/data', '--server', 'http://h']);
  });

  it('removes a --ros-args section that runs to the end, and a bare --ros-args at the end', () => {
    expect(
      stripRosArgs(['watch', '/d', '--ros-args', '--params-file', '/tmp/p.yaml', '-r', '__node:=upload_agent']),
    ).toEqual(['watch', '/d']);
    expect(stripRosArgs(['watch', '/d', '--ros-args'])).toEqual(['watch', '/d']);
  });

  it('removes several sections and keeps a -- that is not inside one', () => {
    expect(
      stripRosArgs(['a', '--ros-args', '-p', 'x:=1', '--', 'b', '--', 'c', '--ros-args', '-p', 'y:=2', '--', 'd']),
    ).toEqual(['a', 'b', '--', 'c', 'd']);
  });

  it('leaves argv without ROS arguments unchanged and does not mutate its input', () => {
    const argv = ['upload', 'f.mcap', '--bandwidth-limit', '2MiB'];
    expect(stripRosArgs(argv)).toEqual(argv);
    const frozen = Object.freeze(['x', '--ros-args', '-p', 'a:=1']);
    expect(stripRosArgs(frozen)).toEqual(['x']);
    expect(frozen).toHaveLength(4);
  });
});

describe('parseRosArgs', () => {
  it('collects params files, -p and -r in order, only inside ROS sections', () => {
    const parsed = parseRosArgs([
      'node',
      'main.js',
      '--params-file',
      'not-ros.yaml',
      '--ros-args',
      '-r',
      '__node:=upload_agent',
      '-r',
      '__ns:=/robot1',
      '--params-file',
      '/tmp/a.yaml',
      '-p',
      'bandwidth_limit:=1000',
      '--param',
      'server_url:=http://h:8080',
      '--log-level',
      'debug',
      '--',
      'tail',
      '--ros-args',
      '--params-file',
      '/tmp/b.yaml',
    ]);
    expect(parsed.paramsFiles).toEqual(['/tmp/a.yaml', '/tmp/b.yaml']);
    expect(parsed.params).toEqual([
      { name: 'bandwidth_limit', value: '1000' },
      { name: 'server_url', value: 'http://h:8080' },
    ]);
    expect(parsed.remaps).toEqual([
      { from: '__node', to: 'upload_agent' },
      { from: '__ns', to: '/robot1' },
    ]);
    expect(hasRosArgs(['--ros-args'])).toBe(true);
    expect(hasRosArgs(['watch'])).toBe(false);
  });
});

"""Checks the arguments of this package's launch files before anything starts.

A bad argument otherwise surfaces late and far from its cause (a Python traceback from the
recorder's working directory, an agent that cannot parse its URL). Pure Python, no ROS imports:
the launch files call check_arguments() (record_and_upload.launch.py directly, the XML files
through check_arguments.launch.py), and the repository's tests call it with python3 alone.
"""

import math
import os

EXAMPLE = 'bag_dir:=/data/bags server_url:=http://127.0.0.1:8080'


class LaunchArgumentError(ValueError):
    """An argument is missing or wrong; the message names it, the fix and an example."""


def _number(name, value, *, minimum, allow_zero, example):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or number < minimum or (number == minimum and not allow_zero):
        bound = f'at least {minimum:g}' if allow_zero else f'more than {minimum:g}'
        raise LaunchArgumentError(f'{name}:={value!r} must be a number of seconds {bound}, e.g. {name}:={example}')
    return number


def check_arguments(values, *, records):
    """Checks the launch arguments (a dict of strings) and returns bag_dir as an absolute path.

    `records`: the launch file starts the recorder, which records into bag_dir (created when
    missing); otherwise the agent only watches it.
    """
    bag_dir = (values.get('bag_dir') or '').strip()
    if not bag_dir:
        raise LaunchArgumentError(
            'bag_dir is empty: give the folder to record into and upload from, e.g. ' + EXAMPLE
        )
    bag_dir = os.path.abspath(os.path.expanduser(bag_dir))
    if os.path.exists(bag_dir) and not os.path.isdir(bag_dir):
        raise LaunchArgumentError(f'bag_dir:={bag_dir} is not a folder: give a folder, e.g. bag_dir:=/data/bags')
    if records:
        try:
            os.makedirs(bag_dir, exist_ok=True)
        except OSError as error:
            raise LaunchArgumentError(
                f'bag_dir:={bag_dir} cannot be created ({error.strerror}): give a folder you can write, '
                'e.g. bag_dir:=/data/bags'
            ) from None
        if not os.access(bag_dir, os.W_OK | os.X_OK):
            raise LaunchArgumentError(f'bag_dir:={bag_dir} is not writable: give a folder you can write')

    server_url = (values.get('server_url') or '').strip()
    if not server_url:
        raise LaunchArgumentError(
            'server_url is empty: give the receiving server, e.g. ' + EXAMPLE + ' (to try it out, run the '
            'bundled server on 127.0.0.1:8080: `node dist/server/cli/main.js` in the ros2-upload-agent checkout)'
        )
    if not server_url.startswith(('http://', 'https://')):
        raise LaunchArgumentError(
            f'server_url:={server_url} must start with http:// or https://, '
            'e.g. server_url:=https://uploads.example.com:8080'
        )

    if 'max_bag_duration' in values:
        _number('max_bag_duration', values['max_bag_duration'], minimum=0, allow_zero=False, example=60)
    if 'drain_timeout' in values:
        drain = _number('drain_timeout', values['drain_timeout'], minimum=0, allow_zero=True, example=30)
        if drain > 3600:
            raise LaunchArgumentError(f'drain_timeout:={drain:g} is over 3600 s, e.g. drain_timeout:=30')
    if 'topics' in values and not (values.get('topics') or '').strip():
        raise LaunchArgumentError('topics is empty: give -a (every topic) or topics, e.g. topics:=/imu')
    return bag_dir

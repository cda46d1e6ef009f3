#!/bin/sh
cat /etc/greeting
echo "built for $(cat /etc/built-on-arch), running on $(uname -m)"

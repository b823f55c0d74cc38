// Compile-only stub of the UnityEditor members StarBridge's inspector uses, per Unity's scripting reference.
#pragma warning disable 1591
using System;
using UnityEngine;

namespace UnityEditor
{
    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
    public class CustomEditor : Attribute
    {
        public CustomEditor(Type inspectedType) { }
        public CustomEditor(Type inspectedType, bool editorForChildClasses) { }
    }

    public class Editor : ScriptableObject
    {
        public UnityEngine.Object target { get { return null; } set { } }
        public SerializedObject serializedObject { get { return null; } }
        public virtual void OnInspectorGUI() { }
        public virtual bool RequiresConstantRepaint() { return false; }
        public void Repaint() { }
    }

    public class SerializedObject : IDisposable
    {
        public void Update() { }
        public bool ApplyModifiedProperties() { return false; }
        public SerializedProperty FindProperty(string propertyPath) { return null; }
        public void Dispose() { }
    }

    public class SerializedProperty { }

    public enum MessageType { None = 0, Info = 1, Warning = 2, Error = 3 }

    public sealed class EditorStyles
    {
        public static GUIStyle boldLabel { get { return null; } }
    }

    public sealed class EditorGUILayout
    {
        public static bool PropertyField(SerializedProperty property, params GUILayoutOption[] options) { return false; }
        public static bool PropertyField(SerializedProperty property, GUIContent label, params GUILayoutOption[] options) { return false; }
        public static void LabelField(string label, params GUILayoutOption[] options) { }
        public static void LabelField(string label, GUIStyle style, params GUILayoutOption[] options) { }
        public static void LabelField(string label, string label2, params GUILayoutOption[] options) { }
        public static void HelpBox(string message, MessageType type) { }
        public static void Space() { }
    }

    public sealed class EditorGUI
    {
        public struct DisabledScope : IDisposable
        {
            public DisabledScope(bool disabled) { }
            public void Dispose() { }
        }
    }
}
